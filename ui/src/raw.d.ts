// `import text from "./file?raw"` (Vite): the file's text.
declare module "*?raw" {
  const text: string;
  export default text;
}
